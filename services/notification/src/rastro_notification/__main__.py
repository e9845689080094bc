from rastro_notification.app import main

main()
